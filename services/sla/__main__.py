"""`python -m services.sla`: run the sla service under uvicorn."""

from bothways.web import serve
from services.sla.app import SETTINGS, SPEC

serve(SPEC, SETTINGS())
