"""Built-in fusion methods: one module per method or family, holding only what differs."""
