from gabay.cli import main

main()
