"""`python -m services.reporting`: run the reporting service under uvicorn."""

from bothways.web import serve
from services.reporting.app import SETTINGS, SPEC

serve(SPEC, SETTINGS())
