module infergate.test/backends/go-echo

go 1.24
