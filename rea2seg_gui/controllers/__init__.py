"""Controllers: plain QObjects holding the GUI's logic; panels only draw and emit."""
