"""The learned parts of thinkgate: difficulty router, complexity predictor, Self-REF."""
