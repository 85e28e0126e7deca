from mantid.simpleapi import RenameWorkspace

# Post-processing only: publish the accumulation under the output name
print(f"accumulation: {accumulation.getNumberHistograms()} spectra per period")
RenameWorkspace(InputWorkspace="accumulation", OutputWorkspace=output)
