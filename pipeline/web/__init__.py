"""The analyst review screen (``mgz review``): FastAPI app, Jinja2 templates, static files."""
