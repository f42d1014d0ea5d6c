"""From stored runs to published results: leaderboards, statistics, plots, publishing."""
