"""Questions intake's routes ask of its read models and store, one module per concern;
the answers are the response bodies of views.py."""
