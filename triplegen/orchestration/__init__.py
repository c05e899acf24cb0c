"""How a run is carried out: the plan and the pipeline steps, chunks written as parts into a resumable
work folder, the executors (local, Ray), retries, the finish that writes the output, and merges."""
