"""Model code for the job kinds (torch, transformers, peft, ultralytics): imported lazily, only by jobs."""
