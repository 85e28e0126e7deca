from mantid.simpleapi import RenameWorkspace

# Post-processing only: report the accumulation, then publish it under the output name.
# With "periods" in the config (fake.conf here asks for [1, 3]) the accumulation is a WorkspaceGroup with
# one member per period; without it, a single workspace. Report each period's spectra and counts.
if accumulation.id() == "WorkspaceGroup":
    members = [accumulation.getItem(i) for i in range(accumulation.getNumberOfEntries())]
else:
    members = [accumulation]
parts = []
for i, ws in enumerate(members):
    run = ws.getRun()
    period = run.getProperty("current_period").value if run.hasProperty("current_period") else i + 1
    parts.append(f"period {period}: {ws.getNumberHistograms()} spectra, {ws.extractY().sum():.0f} counts")
print(f"accumulation: {'; '.join(parts)}")
RenameWorkspace(InputWorkspace="accumulation", OutputWorkspace=output)
