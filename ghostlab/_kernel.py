"""The kernel ghostlab runs notebooks on: ipykernel, with its stderr sent to the run's
kernel.log (``GHOSTLAB_KERNEL_LOG``) so kernel chatter never lands on the user's terminal."""

import os

if __name__ == "__main__":
    log = os.environ.get("GHOSTLAB_KERNEL_LOG")
    if log:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 2)
        os.close(fd)
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()
