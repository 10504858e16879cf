# Shorthands for the scripts in tools/ (which work without make too).

.PHONY: run test test-asan build clean

run:
	./tools/run

test:
	./tools/test

test-asan:
	./tools/test --asan

build:
	./tools/build

clean:
	rm -rf build t/servroot t/servroot-asan
