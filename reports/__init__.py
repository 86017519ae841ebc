"""What a run folder reads as: Tables I and II as data (table1, table2; renderers in tables; the paper's values in
paper), the figures (figures), the self-contained HTML report (html), rendering a run folder (render) and the
samuel-eval command line (cli)."""
