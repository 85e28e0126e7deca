from mantid.simpleapi import Rebin, SumSpectra

# Sum all spectra, then rebin to a common TOF range (the anchor's test script)
SumSpectra(InputWorkspace=input, OutputWorkspace=output)
Rebin(InputWorkspace=output, OutputWorkspace=output, Params="300,20,17000")
