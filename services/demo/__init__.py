"""The end-to-end demo: a drifting workload through the whole loop, narrated and reported.

Not a service: an application of ModelCI-e, as a user's own would be. It publishes requests and
delayed feedback with the client library, reads what the services publish, and measures the
loop from outside (drift onset to new version serving, accuracy before, during and after).
"""
