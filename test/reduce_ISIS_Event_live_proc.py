# Pass-through: report each chunk; the chunk is accumulated as it is
print(f"chunk of {input.getNumberEvents()} events in {input.getNumberHistograms()} spectra")
