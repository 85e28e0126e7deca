# The guide's post-processing template: save the accumulation as NeXus and an integrated summary as text.
import os

from mantid.simpleapi import DeleteWorkspace, Integration, SaveAscii, SaveNexus

run = accumulation.getRun()
run_number = run.getProperty("run_number").value

output_dir = os.environ.get("LIVEREDUCE_DEMO_OUTPUT", "demo-output")
os.makedirs(output_dir, exist_ok=True)

SaveNexus(InputWorkspace="accumulation", Filename=f"{output_dir}/POWGEN_{run_number}_live.nxs")
SaveAscii(InputWorkspace="accumulation", Filename=f"{output_dir}/POWGEN_{run_number}_live.txt")

integrated = Integration(InputWorkspace="accumulation")
SaveAscii(InputWorkspace=integrated, Filename=f"{output_dir}/POWGEN_{run_number}_integrated.txt")
DeleteWorkspace(integrated)
print(f"run {run_number}: {accumulation.getNumberEvents()} counts saved to {output_dir}")
