"""Provider Batch APIs under the registered endpoints: the provider calls
(:mod:`.wire`), the lines and results of a job (:mod:`.lines`) and the one resumable job
call (:mod:`.jobs`). The public functions are in :mod:`endpointr.api.batch`."""
