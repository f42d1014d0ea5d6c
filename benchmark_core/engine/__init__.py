"""The engine: data in, a trained model out (loading, caching, safe unpickling, models, training)."""
