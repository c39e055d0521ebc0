"""The durable job runtime: job rows with leases, an ordered event log per job, workers,
cooperative cancel, pause and resume. Every long-running thing is a job."""
