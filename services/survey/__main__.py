"""`python -m services.survey`: run the survey service under uvicorn."""

from bothways.web import serve
from services.survey.app import SETTINGS, SPEC

serve(SPEC, SETTINGS())
