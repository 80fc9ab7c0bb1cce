from training.experts.cube import PushToGoalExpert as PlayExpert
