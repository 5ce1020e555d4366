"""Application services shared by the CLI, the dashboard and the feed.

- :mod:`~cityheart.services.dispatch`: the dispatch API (incidents from the database, actions
  through the flow)
- :mod:`~cityheart.services.kpi_digest`: the departments' KPIs published on the feed
"""
