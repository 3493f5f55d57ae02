#!/bin/sh
# Snakemake --cluster-status for a Slurm without accounting (no slurmdbd, so no sacct):
# asks the controller with scontrol, which knows a job until MinJobAge after it ends.
#   slurm-status.sh JOBID   prints running, success or failed
# An unknown job counts as finished: snakemake then checks the rule's outputs itself.
id=$1
state=$(scontrol show job "$id" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
case $state in
COMPLETED) echo success ;;
"") echo success ;;
PENDING | RUNNING | CONFIGURING | COMPLETING | SUSPENDED | REQUEUED | RESIZING | SIGNALING | STAGE_OUT)
	echo running
	;;
*) echo failed ;;
esac
