# The powder demo's post-processing: the accumulated run focused as SNS powder reductions do it live.
# The characterization row is chosen by the run's chopper logs (SpeedRequest1, LambdaRequest); it gives the
# d range. AlignAndFocusPowder aligns with the geometry's DIFC (no calibration file) and focuses the POWGEN
# panels in four groups by scattering angle (demo/powder_grouping.xml); its output is in TOF, so the pattern
# is converted to d-spacing, binned logarithmically and saved as XYE text and processed NeXus (with the number
# of events it was made from as the log `events`).
import os

from mantid.simpleapi import (
    AddSampleLog,
    AlignAndFocusPowder,
    ConvertUnits,
    DeleteWorkspace,
    PDDetermineCharacterizations,
    PDLoadCharacterizations,
    Rebin,
    SaveFocusedXYE,
    SaveNexusProcessed,
)

DEMO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
output_dir = os.environ.get("LIVEREDUCE_DEMO_OUTPUT", "demo-output/powder")
os.makedirs(output_dir, exist_ok=True)
run_number = accumulation.getRun().getProperty("run_number").value

PDLoadCharacterizations(
    Filename=os.path.join(DEMO, "powder_characterizations.txt"), OutputWorkspace="characterizations"
)
PDDetermineCharacterizations(InputWorkspace=accumulation, Characterizations="characterizations")
focused = AlignAndFocusPowder(
    InputWorkspace=accumulation,
    GroupFilename=os.path.join(DEMO, "powder_grouping.xml"),
    Params="-0.0005",  # logarithmic: Δd/d = 0.05 %, over the characterization's d range
    CompressTolerance=0.01,
    PreserveEvents=True,
    ReductionProperties="__pd_reduction_properties",
)
pattern = ConvertUnits(InputWorkspace=focused, Target="dSpacing")
pattern = Rebin(InputWorkspace=pattern, Params="0.75,-0.0005,3.3", PreserveEvents=False)
events = accumulation.getNumberEvents()
AddSampleLog(Workspace=pattern, LogName="events", LogText=str(events), LogType="Number", NumberType="Int")
SaveFocusedXYE(InputWorkspace=pattern, Filename=f"{output_dir}/PG3_{run_number}_focused.xye", SplitFiles=False)
SaveNexusProcessed(InputWorkspace=pattern, Filename=f"{output_dir}/PG3_{run_number}_focused.nxs")

counts = [float(sum(pattern.readY(i))) for i in range(pattern.getNumberHistograms())]
RenameWorkspace(InputWorkspace=pattern, OutputWorkspace=output)  # the result: the status page plots it
DeleteWorkspace(focused)
print(f"run {run_number}: {events} events, focused counts per group {counts}")
