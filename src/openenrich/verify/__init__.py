"""The verification-runs surface (/api/v1/…): runs, threads, workflows, tools, usage."""
