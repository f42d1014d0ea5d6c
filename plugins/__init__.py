"""FuseBench's built-in plugins, registered through the ``fusebench`` entry points exactly
like third-party plugin packages."""
