"""System: health, workers, queues and the periodic jobs with their runs."""
