// Command probe is a test trainer for package containers. Its first argument
// selects a behaviour; it reads its directories from KILN_IN and KILN_OUT
// (default /kiln/in and /kiln/out) like a real trainer.
//
//	ok              copy $IN/input.txt to $OUT/output.txt, report progress
//	exit N          write to stderr and exit with code N
//	sleep N         report progress 0, then sleep N seconds
//	spawn C P       start a child "sleep C", print its pid, report progress 0,
//	                then sleep P seconds and exit 0
//	net ADDR...     try to reach 1.1.1.1:53 and each TCP ADDR; list interfaces
//	whoami          print uid and gid
//	write-root      try to create files in /, /etc, $IN, $OUT, /tmp and $TMPDIR
//	status          print the credential, capability, no-new-privileges and
//	                seccomp lines of /proc/self/status
//	forkbomb N      start up to N children ("nap 30") as fast as possible,
//	                printing "spawned I" after each, and stop at the first
//	                failure ("spawn error: …"), exiting 0
//	oom             allocate and touch memory until killed (gives up at 1 GiB)
//	env             print the environment
package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fatal("usage: probe ok|exit N|sleep N|spawn C P|net ADDR...|whoami|write-root|status|forkbomb N|oom|env")
	}
	in, out := dir("KILN_IN", "/kiln/in"), dir("KILN_OUT", "/kiln/out")
	switch args := os.Args[2:]; os.Args[1] {
	case "ok":
		data, err := os.ReadFile(filepath.Join(in, "input.txt"))
		if err != nil {
			fatal(err.Error())
		}
		fmt.Println(`KILN_PROGRESS {"pct": 50, "msg": "copying"}`)
		if err := os.WriteFile(filepath.Join(out, "output.txt"), data, 0o644); err != nil {
			fatal(err.Error())
		}
		fmt.Println("plain stdout line")
		fmt.Println(`KILN_PROGRESS {"pct": 100, "msg": "done"}`)
		fmt.Fprintf(os.Stderr, "probe: copied %d bytes\n", len(data))
	case "exit":
		code, err := strconv.Atoi(arg(args))
		if err != nil {
			fatal(err.Error())
		}
		fmt.Fprintf(os.Stderr, "probe: failing on purpose\nprobe: exit code %d\n", code)
		os.Exit(code)
	case "sleep":
		fmt.Println(`KILN_PROGRESS {"pct": 0, "msg": "sleeping"}`)
		sleep(arg(args))
	case "nap": // sleep silently (spawn's child: its output must not race the parent's)
		sleep(arg(args))
	case "spawn":
		if len(args) != 2 {
			fatal("usage: probe spawn CHILD_SECS PARENT_SECS")
		}
		child := exec.Command(os.Args[0], "nap", args[0])
		child.Stdout, child.Stderr = os.Stdout, os.Stderr // Holds the output open.
		if err := child.Start(); err != nil {
			fatal(err.Error())
		}
		fmt.Printf("child pid %d\n", child.Process.Pid)
		fmt.Println(`KILN_PROGRESS {"pct": 0, "msg": "sleeping"}`)
		sleep(args[1])
	case "net":
		report("udp 1.1.1.1:53", dial("udp", "1.1.1.1:53"))
		report("tcp 1.1.1.1:53", dial("tcp", "1.1.1.1:53"))
		for _, addr := range args {
			report("tcp "+addr, dial("tcp", addr))
		}
		ifaces, err := net.Interfaces()
		if err != nil {
			fatal(err.Error())
		}
		for _, iface := range ifaces {
			fmt.Printf("interface %s\n", iface.Name)
		}
	case "whoami":
		fmt.Printf("uid=%d gid=%d\n", os.Getuid(), os.Getgid())
	case "write-root":
		paths := []string{"/x", "/etc/x", filepath.Join(in, "x"), filepath.Join(out, "x"), "/tmp/x"}
		if tmp := os.Getenv("TMPDIR"); tmp != "" {
			paths = append(paths, filepath.Join(tmp, "tmpdir-x"))
		}
		for _, path := range paths {
			report("write "+path, os.WriteFile(path, []byte("x"), 0o644))
		}
	case "status":
		data, err := os.ReadFile("/proc/self/status")
		if err != nil {
			fatal(err.Error())
		}
		for _, line := range strings.Split(string(data), "\n") {
			for _, key := range []string{"Uid:", "Gid:", "Groups:", "CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:", "NoNewPrivs:", "Seccomp:"} {
				if strings.HasPrefix(line, key) {
					fmt.Println(strings.Join(strings.Fields(line), " "))
				}
			}
		}
	case "forkbomb":
		n, err := strconv.Atoi(arg(args))
		if err != nil {
			fatal(err.Error())
		}
		for i := 1; i <= n; i++ {
			child := exec.Command(os.Args[0], "nap", "30")
			if err := child.Start(); err != nil {
				fmt.Printf("spawn error: %v\n", err)
				return
			}
			fmt.Printf("spawned %d\n", i)
		}
	case "oom":
		var chunks [][]byte
		for i := 1; i <= 1024; i++ {
			chunk := make([]byte, 1<<20)
			for j := 0; j < len(chunk); j += 4096 {
				chunk[j] = 1
			}
			chunks = append(chunks, chunk)
			if i%16 == 0 {
				fmt.Fprintf(os.Stderr, "probe: allocated %d MiB\n", i)
			}
		}
		fmt.Fprintf(os.Stderr, "probe: allocated %d MiB without being killed\n", len(chunks))
	case "env":
		env := os.Environ()
		sort.Strings(env)
		for _, kv := range env {
			fmt.Println(kv)
		}
	default:
		fatal("unknown behaviour " + os.Args[1])
	}
}

func dir(env, def string) string {
	if v := os.Getenv(env); v != "" {
		return v
	}
	return def
}

func arg(args []string) string {
	if len(args) == 0 {
		fatal("missing argument")
	}
	return args[0]
}

func sleep(secs string) {
	n, err := strconv.Atoi(secs)
	if err != nil {
		fatal(err.Error())
	}
	time.Sleep(time.Duration(n) * time.Second)
}

func dial(network, addr string) error {
	conn, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		return err
	}
	return conn.Close()
}

// report prints "<what>: ok" or "<what>: error: <err>".
func report(what string, err error) {
	if err != nil {
		fmt.Printf("%s: error: %v\n", what, err)
		return
	}
	fmt.Printf("%s: ok\n", what)
}

func fatal(msg string) {
	fmt.Fprintln(os.Stderr, "probe:", msg)
	os.Exit(2)
}
