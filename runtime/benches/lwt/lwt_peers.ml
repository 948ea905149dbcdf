(* The OCaml Lwt side of the lwt_peers benchmark (runtime/benches/lwt_peers.rs).

   Each case runs the same workload as the Rust side and prints two lines:
     <case> <ns/op>        (wall-clock time)
     <case>_cpu <ns/op>    (CPU time: user + system, from Unix.times)
   plus "spawn_join_peak_bytes <n>" and "spawn_join_bytes_per_task <n>"
   (from the GC's heap statistics). Built by the Rust bench with
     ocamlfind ocamlopt -thread -package lwt.unix -linkpkg lwt_peers.ml
   and run with an optional scale factor for the iteration counts, then
   optionally the name of the one case to run ("memory" for the memory
   lines). *)

open Lwt.Syntax

let now () = Unix.gettimeofday ()

(* User + system time of the process (getrusage, as the Rust side reads it). *)
let cpu () =
  let t = Unix.times () in
  t.Unix.tms_utime +. t.Unix.tms_stime

let report name n f =
  Gc.compact ();
  let t0 = now () and c0 = cpu () in
  Lwt_main.run (f ());
  let t1 = now () and c1 = cpu () in
  let per_op d = d *. 1e9 /. float_of_int n in
  Printf.printf "%s %.2f\n%s_cpu %.2f\n%!" name (per_op (t1 -. t0)) name (per_op (c1 -. c0))

(* 10,000,000 binds on an already resolved promise. *)
let bind_ready n () =
  let rec loop i acc =
    if i = n then Lwt.return acc
    else Lwt.bind (Lwt.return i) (fun v -> loop (i + 1) (acc + v))
  in
  let* acc = loop 0 0 in
  assert (acc = n * (n - 1) / 2);
  Lwt.return_unit

(* Pending promise + resolver, one continuation, resolve, observe. *)
let wait_wakeup n () =
  let acc = ref 0 in
  for i = 1 to n do
    let p, r = Lwt.wait () in
    let q = Lwt.map (fun v -> v + 1) p in
    Lwt.wakeup r i;
    match Lwt.state q with
    | Lwt.Return v -> acc := !acc + v
    | _ -> assert false
  done;
  assert (!acc = (n * (n + 1) / 2) + n);
  Lwt.return_unit

(* Round trips between two threads through two mvars. *)
let pingpong n () =
  let ping = Lwt_mvar.create_empty () in
  let pong = Lwt_mvar.create_empty () in
  let rec echo i =
    if i = n then Lwt.return_unit
    else
      let* v = Lwt_mvar.take ping in
      let* () = Lwt_mvar.put pong (v + 1) in
      echo (i + 1)
  in
  let rec serve i =
    if i = n then Lwt.return_unit
    else
      let* () = Lwt_mvar.put ping i in
      let* v = Lwt_mvar.take pong in
      assert (v = i + 1);
      serve (i + 1)
  in
  Lwt.join [ echo 0; serve 0 ]

let task_that_pauses () =
  let* () = Lwt.pause () in
  Lwt.return_unit

(* Spawn n threads that pause once each, join them all. *)
let spawn_join n () =
  let tasks = List.init n (fun _ -> task_that_pauses ()) in
  Lwt.join tasks

(* One thread pausing n times. *)
let pause_loop n () =
  let rec loop i = if i = n then Lwt.return_unit else let* () = Lwt.pause () in loop (i + 1) in
  loop 0

(* n sleeps with deadlines (i mod 1000) * 20 us, all awaited. *)
let timers n () =
  Lwt.join
    (List.init n (fun i -> Lwt_unix.sleep (float_of_int (i mod 1000) *. 20e-6)))

(* n picks between a promise resolved after one pause and a 10 s sleep. *)
let pick_timeout n () =
  let rec loop i =
    if i = n then Lwt.return_unit
    else
      let* () = Lwt.pick [ Lwt.pause (); Lwt_unix.sleep 10. ] in
      loop (i + 1)
  in
  loop 0

(* The heap the spawn_join workload needs: the peak heap, and the words
   allocated per task (minor + major, without the list itself). *)
let spawn_join_memory n =
  Gc.compact ();
  let before = Gc.quick_stat () in
  let words0 = before.Gc.minor_words +. before.Gc.major_words -. before.Gc.promoted_words in
  Lwt_main.run (spawn_join n ());
  let after = Gc.quick_stat () in
  let words1 = after.Gc.minor_words +. after.Gc.major_words -. after.Gc.promoted_words in
  let word = float_of_int (Sys.word_size / 8) in
  Printf.printf "spawn_join_peak_bytes %d\n" (after.Gc.top_heap_words * Sys.word_size / 8);
  Printf.printf "spawn_join_bytes_per_task %.1f\n%!" ((words1 -. words0) *. word /. float_of_int n)

let () =
  let scale = try float_of_string Sys.argv.(1) with _ -> 1.0 in
  let only = if Array.length Sys.argv > 2 then Some Sys.argv.(2) else None in
  let n k = max 1 (int_of_float (float_of_int k *. scale)) in
  let case name k f =
    if only = None || only = Some name then report name (n k) (f (n k))
  in
  case "bind_ready" 10_000_000 bind_ready;
  case "wait_wakeup" 5_000_000 wait_wakeup;
  case "pingpong" 1_000_000 pingpong;
  case "spawn_join" 1_000_000 spawn_join;
  case "pause_loop" 1_000_000 pause_loop;
  case "timers" 100_000 timers;
  case "pick_timeout" 200_000 pick_timeout;
  if only = None || only = Some "memory" then spawn_join_memory (n 1_000_000)
