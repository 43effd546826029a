"""What the bot understands: routing, grammar, and one module per audience."""
