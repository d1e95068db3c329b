"""Running and operating the worker system: the worker manager, the supervisor and the demo."""
