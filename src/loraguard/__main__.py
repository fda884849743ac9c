from loraguard.cli.app import main

raise SystemExit(main())
