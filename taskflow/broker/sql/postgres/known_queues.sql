SELECT name FROM {schema}.queues
