"""Wire models (Pydantic v2) of every request, response, error and catalogue entry."""

from .catalogue import CatalogueDetail, CatalogueEntry, Example, ParamInfo
from .curves import CurveAxis, CurveResponse, CurveSeries, VegaLiteSpec
from .grading import (Check, ExerciseOptions, ExerciseRequest, ExerciseResponse, GradeMeta, GradeRequest, GradeResponse,
                      GradescopeOptions, GradescopeResults, GradescopeTest, Submission, Tolerance, Worst)
from .losses import (BatchError, BatchItem, BatchRequest, BatchResponse, LossOptions, LossRequest, LossResponse,
                     Meta)
from .ops import Health, Readiness
from .problems import PROBLEM_RESPONSES, Problem, ProblemItem

__all__ = ["PROBLEM_RESPONSES", "BatchError", "BatchItem", "BatchRequest", "BatchResponse", "CatalogueDetail",
           "CatalogueEntry", "Check", "CurveAxis", "CurveResponse", "CurveSeries", "Example", "ExerciseOptions",
           "ExerciseRequest", "ExerciseResponse", "GradeMeta", "GradeRequest", "GradeResponse", "GradescopeOptions",
           "GradescopeResults", "GradescopeTest", "Health", "Readiness",
           "LossOptions", "LossRequest", "LossResponse", "Meta", "ParamInfo", "Problem", "ProblemItem", "Submission",
           "Tolerance", "VegaLiteSpec", "Worst"]
