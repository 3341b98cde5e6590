"""The batch tasks, one module each, named in :data:`engine.batch.catalogue.TASKS`."""
