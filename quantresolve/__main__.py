from quantresolve.cli.main import main; raise SystemExit(main())
