"""`python -m services.ingest`: run the ingest service under uvicorn."""

from bothways.web import serve
from services.ingest.app import SETTINGS, SPEC

serve(SPEC, SETTINGS())
