"""The bottom layer every step shares: recipes and shipped files, the hardware table, text formatting, and the
typed artifacts the steps write for each other. It imports no other part of hfscratch."""
