-- Since jobs get their target when claimed (ADR 20), a queued job's target is '', so no
-- query can use an index that leads with it: the claim reads the queue's groups through
-- jobs_queue_group, and the counts of queued jobs go through jobs_by_state. These two
-- only cost a page write in every transaction that queues or claims a job.
DROP INDEX IF EXISTS jobs_queue;
DROP INDEX IF EXISTS jobs_queue_by_model;
