# The processing-scripts guide's powder template, with the demo's grouping file.
import os

from mantid.simpleapi import ConvertUnits, DiffractionFocussing, Rebin

cal = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "PG3_demo.cal")

ConvertUnits(InputWorkspace=input, OutputWorkspace=output, Target="dSpacing")
DiffractionFocussing(InputWorkspace=output, OutputWorkspace=output, GroupingFileName=cal)
Rebin(InputWorkspace=output, OutputWorkspace=output, Params="0.5,-0.001,2.5", PreserveEvents=False)
