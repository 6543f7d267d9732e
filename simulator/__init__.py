"""A seeded simulation of an IT organisation and its ITSM platforms, played through the real webhooks.

`organisation` and `world` make the timeline of facts (pure), `platforms` renders each fact as a platform's
signed webhook (pure), `satisfaction` decides what customers would answer (pure), `driver` sends it all.
"""
