//! Executors: who runs the tasks of a planned run. The local executor is
//! `pipeline::run_curate` itself (the tasks in this process); [`slurm`]
//! submits the same tasks (`tritter-gpu run-step`) to a Slurm cluster as job
//! arrays. Both read and write only the work directory and the same done
//! markers, so a run started by one can be finished by the other, and the
//! bytes do not depend on which ran it.

pub mod slurm;
