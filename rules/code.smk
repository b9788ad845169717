# Snakemake does not track Python imports: each rule family's library files are hashed into one
# small file that the family's jobs take as input, so an edit to any of them reruns just those jobs.


rule code:
    input:
        code_files,
    output:
        "results/code/{family}.sha256",
    log:
        "results/logs/code/{family}.log",
    wildcard_constraints:
        family=alternatives(CODE),
    localrule: True
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/fingerprint.py"
