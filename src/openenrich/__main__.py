from openenrich.cli import main

main()
