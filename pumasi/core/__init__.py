"""The framework pieces every capability shares: domain errors, the API shell, events, time."""
