"""Helpers shared by the test suites: events, fake Lambda contexts, moto resources, a pipeline pump."""
