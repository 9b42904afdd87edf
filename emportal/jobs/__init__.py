"""Background jobs: the Job row, its lifecycle, the REST API, the reaper and the kind registry.

The app knows no job kinds: each app registers its own in its AppConfig.ready()
(see ``emportal.jobs.registry``).
"""
