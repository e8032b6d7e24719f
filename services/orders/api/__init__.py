"""HTTP: thin routes (parse, authorise, call the application, shape the answer) and their schemas."""
