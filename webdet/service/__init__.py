"""The detection service behind `webdet serve` and `webdet worker`.

FastAPI on uvicorn: the bundled web app and model as static files, `POST /api/detect`, and async jobs
that run in process by default or on Redis + RQ workers (`--queue redis://…`) to scale out.
"""
