module github.com/vm-admission/vm-admission/bench/goecho

go 1.22
