"""The demo: real workers, real work from the sample files, and the results shown."""
