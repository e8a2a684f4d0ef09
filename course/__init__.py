"""The lab as a course: the exercises and their checks, the student edition, the grading engine and
its diagnoses, and the Gradescope autograder. Built on lab/; never imports studies/."""
